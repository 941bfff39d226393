rule marginalize_motifs:
    wildcard_constraints:
        name=SINGLE,
    input:
        unpack(marginalize_inputs),
    output:
        summary=layout.path("marginalize_summary"),
        html=layout.path("marginalize_html"),
    params:
        config=stage_params("marginalize"),
        folder=layout.path("marginalize"),
    log:
        layout.log("marginalize_motifs"),
    benchmark:
        layout.benchmark("marginalize_motifs")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/marginalize_motifs.py"
