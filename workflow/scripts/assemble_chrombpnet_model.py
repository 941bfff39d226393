from bpnet_core.chrombpnet import assemble_chrombpnet
from bpnet_core.runtime import run_logged

run_logged(
    assemble_chrombpnet,
    snakemake.input.bias,
    snakemake.input.accessibility,
    snakemake.output[0],
    log_path=snakemake.log[0],
)
