from bpnet_core.predict import predict_arrays
from bpnet_core.runtime import run_logged

run_logged(
    predict_arrays,
    snakemake.params.config,
    snakemake.output.profile,
    snakemake.output.counts,
    log_path=snakemake.log[0],
    threads=snakemake.threads,
)
