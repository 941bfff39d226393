from bpnet_core.attribute import attribute_model
from bpnet_core.runtime import run_logged

run_logged(
    attribute_model,
    snakemake.params.config,
    snakemake.output.ohe,
    snakemake.output.attr,
    snakemake.output.loci,
    snakemake.output.bigwig,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
