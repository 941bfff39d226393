rule attribute_peaks:
    wildcard_constraints:
        name=SINGLE,
    input:
        unpack(attribute_inputs),
    output:
        ohe=layout.path("ohe"),
        attr=layout.path("attr"),
        loci=layout.path("attributed_loci"),
        bigwig=layout.path("contrib_bigwig"),
    params:
        config=stage_params("attribute"),
    log:
        layout.log("attribute_peaks"),
    benchmark:
        layout.benchmark("attribute_peaks")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/attribute_peaks.py"
