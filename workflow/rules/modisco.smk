rule discover_motifs:
    input:
        ohe="results/{name}/attribute/{name}.ohe.npz",
        attr="results/{name}/attribute/{name}.attr.npz",
    output:
        "results/{name}/modisco/{name}.modisco.h5",
    params:
        config=stage_params("modisco_motifs"),
    log:
        "results/{name}/logs/discover_motifs.log",
    benchmark:
        "results/{name}/benchmarks/discover_motifs.tsv"
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/discover_motifs.py"


rule report_motifs:
    input:
        unpack(report_inputs),
        h5="results/{name}/modisco/{name}.modisco.h5",
    output:
        table="results/{name}/modisco/report/motifs.tsv",
        html="results/{name}/modisco/report/report.html",
    params:
        config=stage_params("modisco_report"),
        folder="results/{name}/modisco/report",
    log:
        "results/{name}/logs/report_motifs.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/report_motifs.py"


rule export_motifs:
    input:
        "results/{name}/modisco/{name}.modisco.h5",
    output:
        "results/{name}/modisco/{name}.motifs.meme",
    log:
        "results/{name}/logs/export_motifs.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/export_motifs.py"
