from bpnet_core.folds import tabulate_fold_metrics
from bpnet_core.runtime import run_logged

run_logged(
    tabulate_fold_metrics,
    snakemake.params.folds,
    snakemake.input.performance,
    snakemake.input.regions,
    snakemake.output.table,
    snakemake.output.performance,
    snakemake.output.regions,
    log_path=snakemake.log[0],
)
