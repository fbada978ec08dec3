import pytest
import torch

from facet_lib.config import HeadConfig
from facet_lib.errors import ConfigError
from facet_lib.models.facet import MTGF, CVSABlock, FacetHead


def _grads_ok(module, loss):
    loss.backward()
    params = [p for p in module.parameters() if p.requires_grad]
    assert params and all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


def test_cvsa_shapes_and_gradients():
    blk = CVSABlock(32, 4, mlp=True)
    z = torch.randn(2, 30, 32)
    out = blk(z)
    assert out.shape == z.shape and torch.isfinite(out).all()
    _grads_ok(blk, out.pow(2).mean())


def test_mtgf_attention_is_a_distribution_and_gate_in_unit_interval():
    m = MTGF(16)
    v_tg, attn, alpha = m(torch.randn(3, 12, 16), torch.randn(3, 5, 16))
    assert v_tg.shape == (3, 5, 16) and attn.shape == (3, 5, 12) and alpha.shape == (3, 5, 1)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 5))
    assert ((alpha > 0) & (alpha < 1)).all()
    _grads_ok(m, v_tg.sum() + alpha.sum())


PAPER_FORMS = {}  # the defaults: eq. 4 as one attention, MTGF and gate without LayerNorm or biases
STRONG_FORMS = {"cvsa_form": "block", "cvsa_heads": 4, "mtgf_key_norm": True, "mtgf_bias": True, "gate_bias": True}


@pytest.mark.parametrize("forms", [PAPER_FORMS, STRONG_FORMS], ids=["paper_forms", "strong_forms"])
@pytest.mark.parametrize("head_out", ["none", "identity", "learned"])
@pytest.mark.parametrize("source", ["pre_cvsa", "post_cvsa"])
@pytest.mark.parametrize(
    "cvsa, mtgf, views",
    [(True, True, [0, 1, 2]), (False, True, [0, 1, 2]), (True, False, [0, 1, 2]), (True, True, [1])],
)
def test_head_every_variant(cvsa, mtgf, views, head_out, source, forms):
    cfg = HeadConfig(cvsa=cvsa, mtgf=mtgf, head_out=head_out, mtgf_input=source, view_embed_from=source, **forms)
    head = FacetHead(cfg, dim=16, n_tokens=4)
    tokens = torch.randn(5, len(views), 4, 16)
    out = head(tokens, torch.randn(5, 16), views=views)
    assert out["image_embed"].shape == (5, 1, 16) and out["view_embeds"].shape == (5, len(views), 16)
    torch.testing.assert_close(out["image_embed"].norm(dim=-1), torch.ones(5, 1))
    multi = head(tokens, torch.randn(5, 6, 16), views=views)  # one query per class
    assert multi["image_embed"].shape == (5, 6, 16)
    _grads_ok(head, out["image_embed"].sum() + out["view_embeds"].sum())


def test_view_positional_encodings_distinguish_views():
    head = FacetHead(HeadConfig(cvsa=False, mtgf=False, view_embed_from="post_cvsa"), dim=8, n_tokens=2)
    same = torch.randn(1, 1, 2, 8).expand(1, 3, 2, 8)
    e = head(same)["view_embeds"][0]
    assert not torch.allclose(e[0], e[1])  # identical tokens, different view tables
    pre = FacetHead(HeadConfig(cvsa=False, mtgf=False, view_embed_from="pre_cvsa"), dim=8, n_tokens=2)
    e = pre(same)["view_embeds"][0]
    torch.testing.assert_close(e[0], e[1])  # the encoder's own output: identical views agree


def test_bad_head_setting_is_refused_by_name():
    with pytest.raises(ConfigError, match="head.head_out"):
        FacetHead(HeadConfig(head_out="mlp"), dim=8, n_tokens=2)
    with pytest.raises(ConfigError, match="head.mtgf_input"):
        FacetHead(HeadConfig(mtgf_input="after"), dim=8, n_tokens=2)
    with pytest.raises(ConfigError, match="head.cvsa_form"):
        HeadConfig(cvsa_form="mha")
    with pytest.raises(ConfigError, match="cvsa_heads must be 1"):
        HeadConfig(cvsa_heads=8)  # eq. 4 is one attention
    with pytest.raises(ConfigError, match="cvsa_heads must be 1"):
        HeadConfig(cvsa_mlp=True)
    assert HeadConfig(cvsa_form="block", cvsa_heads=8, cvsa_mlp=True).cvsa_heads == 8


def test_block_cvsa_heads_that_do_not_divide_the_width_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"head.cvsa_heads=3 must divide the backbone's token width 32"):
        FacetHead(HeadConfig(cvsa_form="block", cvsa_heads=3), dim=32, n_tokens=2)  # not torch's AssertionError
    assert FacetHead(HeadConfig(cvsa_form="block", cvsa_heads=4), dim=32, n_tokens=2).cvsa is not None


def test_bad_head_count_is_one_error_line_from_the_cli(tmp_path, capsys):
    """The width is known only when the model is built (here in ``cv``): one ``error:`` line, exit 2."""
    from facet_lib.cli import main
    from facet_lib.data.folds import make_folds, save_folds
    from facet_lib.data.indexers import index_dataset, select_protocol
    from facet_lib.data.synthetic import SynthConfig, generate
    from facet_lib.render import RenderConfig
    from facet_lib.render.dataset import render_dataset

    root = generate("bu3dfe", tmp_path / "bu3dfe", SynthConfig(subjects=2, step=4.0, seed=0, workers=1))
    idx, _ = select_protocol(index_dataset("bu3dfe", root).index, "bu3dfe-I")
    render_dataset(idx, tmp_path / "views", RenderConfig(size=64), progress=False, workers=1)
    save_folds(make_folds(idx, 2, seed=0), tmp_path / "folds.csv")
    args = ["cv", "--views", str(tmp_path / "views"), "--folds", str(tmp_path / "folds.csv"), "--out", str(tmp_path)]
    sets = ["--preset", "tiny-cpu", "--set", "head.cvsa_form=block", "head.cvsa_heads=7"]
    capsys.readouterr()  # the generator's and indexer's progress lines
    assert main([*args, *sets]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and "AssertionError" not in err
    assert "head.cvsa_heads=7 must divide the backbone's token width 128" in errors[0]  # facet-tiny: width 128
