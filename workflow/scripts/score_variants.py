from bpnet_core.runtime import run_logged
from bpnet_core.variants import score_variant_chunk

run_logged(
    score_variant_chunk,
    snakemake.params.config,
    snakemake.output.scores,
    snakemake.output.null,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
