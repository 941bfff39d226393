rule discover_motifs:
    input:
        ohe=layout.path("ohe"),
        attr=layout.path("attr"),
    output:
        layout.path("modisco"),
    params:
        config=stage_params("modisco_motifs"),
    log:
        layout.log("discover_motifs"),
    benchmark:
        layout.benchmark("discover_motifs")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/discover_motifs.py"


rule report_motifs:
    input:
        unpack(report_inputs),
        h5=layout.path("modisco"),
    output:
        table=layout.path("modisco_report_table"),
        html=layout.path("modisco_report_html"),
    params:
        config=stage_params("modisco_report"),
        folder=layout.path("modisco_report"),
    log:
        layout.log("report_motifs"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/report_motifs.py"


rule export_motifs:
    input:
        layout.path("modisco"),
    output:
        layout.path("motifs_meme"),
    log:
        layout.log("export_motifs"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/export_motifs.py"
