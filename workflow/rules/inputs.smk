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
        plus=layout.path("reads_bigwig_plus"),
        minus=layout.path("reads_bigwig_minus"),
    params:
        config=reads_params,
    log:
        layout.log("convert_{role}_to_bigwig"),
    benchmark:
        layout.benchmark("convert_{role}_to_bigwig")
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
        layout.path("reads_bigwig"),
    params:
        config=reads_params,
    log:
        layout.log("convert_{role}_to_bigwig"),
    benchmark:
        layout.benchmark("convert_{role}_to_bigwig")
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
        layout.path("peaks"),
    params:
        config=stage_params("call_peaks"),
    log:
        layout.log("call_peaks"),
    benchmark:
        layout.benchmark("call_peaks")
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
        negatives=layout.path("negatives"),
        gc=layout.path("negatives_gc"),
    params:
        config=stage_params("negatives"),
    log:
        layout.log("draw_negatives"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/draw_negatives.py"
