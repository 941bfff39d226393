from bpnet_core.folds import average_predictions
from bpnet_core.runtime import run_logged

run_logged(
    average_predictions,
    snakemake.input.profiles,
    snakemake.input.counts,
    snakemake.output.profile,
    snakemake.output.counts,
    log_path=snakemake.log[0],
)
