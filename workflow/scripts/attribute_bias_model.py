from bpnet_core.bias_qc import attribute_bias_model
from bpnet_core.runtime import run_logged

run_logged(
    attribute_bias_model,
    snakemake.params.config,
    snakemake.output.ohe,
    snakemake.output.attr,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
