from bpnet_core.predict import export_bigwig
from bpnet_core.runtime import run_logged

run_logged(
    export_bigwig,
    snakemake.input.profile,
    snakemake.input.counts,
    snakemake.input.sequences,
    int(snakemake.wildcards.track),
    snakemake.output[0],
    log_path=snakemake.log[0],
)
