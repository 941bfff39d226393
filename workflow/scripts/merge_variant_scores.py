from bpnet_core.runtime import run_logged
from bpnet_core.variants import finish_variant_scores

run_logged(
    finish_variant_scores,
    snakemake.params.config,
    snakemake.input.chunks,
    snakemake.input.nulls,
    snakemake.output.scores,
    snakemake.output.null,
    snakemake.output.html,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
