from bpnet_core.model_import import import_model
from bpnet_core.runtime import run_logged

run_logged(
    import_model,
    snakemake.input[0],
    snakemake.output[0],
    snakemake.wildcards.model_key,
    snakemake.params.trimming,
    log_path=snakemake.log[0],
)
