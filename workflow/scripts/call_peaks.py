from bpnet_core.peaks import call_peaks
from bpnet_core.runtime import run_logged

run_logged(call_peaks, snakemake.params.config, log_path=snakemake.log[0])
