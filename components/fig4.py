from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def fig4(
    ablation_table: Input[Dataset],
    figure: Output[Dataset],
    report: Output[HTML],
    markdown: Output[Markdown],
):
    """The paper's Fig. 4 from the run's ablation table: the six difference columns, ours beside the paper's
    values (``facet_lib.eval.fig4.fig4_report``), as an HTML and a Markdown artifact."""
    import shutil

    from facet_lib.eval.fig4 import fig4_report

    fig4_report([ablation_table.path], figure.path)
    shutil.copy(figure.path + "/fig4.html", report.path)
    shutil.copy(figure.path + "/fig4.md", markdown.path)
