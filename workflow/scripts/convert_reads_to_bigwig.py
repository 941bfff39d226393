from bpnet_core.reads import convert_reads
from bpnet_core.runtime import run_logged

run_logged(convert_reads, snakemake.params.config, log_path=snakemake.log[0])
