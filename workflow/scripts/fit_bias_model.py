from bpnet_core.chrombpnet import fit_bias_model
from bpnet_core.runtime import run_logged

run_logged(
    fit_bias_model,
    snakemake.params.config,
    snakemake.output.model,
    snakemake.output.history,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
