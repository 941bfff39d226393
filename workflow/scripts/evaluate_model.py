from bpnet_core.evaluate import evaluate_model
from bpnet_core.runtime import run_logged

run_logged(
    evaluate_model,
    snakemake.params.config,
    snakemake.output.performance,
    snakemake.output.regions,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
