from bpnet_core.runtime import run_logged
from bpnet_core.train import fit_model

run_logged(
    fit_model,
    snakemake.params.config,
    snakemake.output.model,
    snakemake.output.history,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
