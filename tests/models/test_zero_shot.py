"""head_out none/identity keep CLIP's joint image-text space at initialisation; learned does not."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facet_lib.config import HeadConfig, ModelConfig
from facet_lib.data.labels import prompts_for
from facet_lib.models.model import FacetVLM

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


@pytest.fixture(scope="module")
def clip_reference():
    """A random-weight tiny CLIP, patch tokens of 4 samples × 3 views, and CLIP's own embedding of them.

    CLIP's own pooling is switched to the mean of the patch tokens (``pool_type="avg"``: ln_post → mean →
    visual.proj), the pooling the paper's eq. 6 uses; the reference is that embedding averaged over views."""
    torch.manual_seed(0)
    base = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    views = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 3, 112, 112, 3), dtype=np.uint8))
    with torch.no_grad():
        tokens = base.tokens_from_hidden(base.hidden_from_views(views))
        base.clip.visual.pool_type = "avg"
        pooled = base.clip.encode_image(base.visual.preprocess(views.flatten(0, 1)))
        base.clip.visual.pool_type = "tok"
    ref = F.normalize(pooled.unflatten(0, (4, 3)).mean(1), dim=-1)
    return base.clip, tokens, ref


def _scores(clip, tokens, head_out):
    torch.manual_seed(1)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1, head=HeadConfig(head_out=head_out)), clip=clip)
    bank = m.build_text_bank(LABELS, prompts_for(LABELS, mode=m.cfg.prompts))
    with torch.no_grad():
        free, out = m.scores(tokens, bank.class_embeds, "label_free")
        cond, _ = m.scores(tokens, bank.class_embeds, "class_conditional")
    return out["image_embed"][:, 0], free / m.logit_scale(), cond / m.logit_scale(), bank.class_embeds


@pytest.mark.parametrize("head_out", ["none", "identity"])
def test_fresh_head_keeps_clip_zero_shot_scores(clip_reference, head_out):
    clip, tokens, ref = clip_reference
    emb, free, cond, classes = _scores(clip, tokens, head_out)
    assert (emb * ref).sum(-1).min() > 0.995  # same direction as CLIP's own pooled embedding
    zero_shot = ref @ classes.t()  # CLIP's own cosine scores against the class prompts
    assert (free - zero_shot).abs().max() < 0.01 and (cond - zero_shot).abs().max() < 0.01
    assert torch.equal(free.argmax(1), zero_shot.argmax(1))


def test_learned_output_layer_scrambles_the_joint_space(clip_reference):
    clip, tokens, ref = clip_reference
    emb, free, _, classes = _scores(clip, tokens, "learned")
    assert (emb * ref).sum(-1).max() < 0.9  # what the test above guards against
    assert (free - ref @ classes.t()).abs().max() > 0.05
