from bpnet_core.modisco import export_meme
from bpnet_core.runtime import run_logged

run_logged(export_meme, snakemake.input[0], snakemake.output[0], log_path=snakemake.log[0])
