# Model inputs from raw ENCODE files, only where the config asks for them
# (see bpnet_core.config.prepare_inputs): reads -> count bigWigs, MACS3
# peaks when `loci` is absent, GC-matched negatives when a ChromBPNet
# config has no `negatives`.


rule convert_reads_to_stranded_bigwigs:
    wildcard_constraints:
        name=CONVERTS_READS,
        role="signals|controls",
    input:
        unpack(reads_inputs),
    output:
        plus="results/{name}/inputs/{role}.plus.bw",
        minus="results/{name}/inputs/{role}.minus.bw",
    params:
        config=reads_params,
    log:
        "results/{name}/logs/convert_{role}_to_bigwig.log",
    benchmark:
        "results/{name}/benchmarks/convert_{role}_to_bigwig.tsv"
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=240,
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/convert_reads_to_bigwig.py"


rule convert_reads_to_bigwig:
    wildcard_constraints:
        name=CONVERTS_READS,
        role="signals|controls",
    input:
        unpack(reads_inputs),
    output:
        "results/{name}/inputs/{role}.bw",
    params:
        config=reads_params,
    log:
        "results/{name}/logs/convert_{role}_to_bigwig.log",
    benchmark:
        "results/{name}/benchmarks/convert_{role}_to_bigwig.tsv"
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=240,
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/convert_reads_to_bigwig.py"


rule call_peaks:
    wildcard_constraints:
        name=CALLS_PEAKS,
    input:
        unpack(call_peaks_inputs),
    output:
        "results/{name}/inputs/peaks.narrowPeak",
    params:
        config=stage_params("call_peaks"),
    log:
        "results/{name}/logs/call_peaks.log",
    benchmark:
        "results/{name}/benchmarks/call_peaks.tsv"
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=240,
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/call_peaks.py"


rule draw_negatives:
    wildcard_constraints:
        name=DRAWS_NEGATIVES,
    input:
        unpack(negatives_inputs),
    output:
        negatives="results/{name}/inputs/negatives.bed",
        gc="results/{name}/inputs/negatives.gc.tsv",
    params:
        config=stage_params("negatives"),
    log:
        "results/{name}/logs/draw_negatives.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/draw_negatives.py"
