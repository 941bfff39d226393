from bpnet_core.modisco import discover_motifs_stage
from bpnet_core.runtime import run_logged

run_logged(
    discover_motifs_stage,
    snakemake.params.config,
    snakemake.input.ohe,
    snakemake.input.attr,
    snakemake.output[0],
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
