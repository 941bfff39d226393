from bpnet_core.folds import average_marginalization
from bpnet_core.runtime import run_logged

run_logged(
    average_marginalization,
    snakemake.input.summaries,
    snakemake.params.folds,
    snakemake.output.summary,
    snakemake.output.html,
    log_path=snakemake.log[0],
)
