from bpnet_core.bias_qc import qc_bias_model
from bpnet_core.runtime import run_logged

run_logged(
    qc_bias_model,
    snakemake.params.config,
    snakemake.input.h5,
    snakemake.params.folder,
    log_path=snakemake.log[0],
)
