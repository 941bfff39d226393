from bpnet_core.chrombpnet import extract_submodel
from bpnet_core.runtime import run_logged

run_logged(extract_submodel, snakemake.input[0], "accessibility", snakemake.output[0], log_path=snakemake.log[0])
