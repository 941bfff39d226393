rule marginalize_motifs:
    input:
        unpack(marginalize_inputs),
    output:
        summary="results/{name}/marginalize/summary.tsv",
        html="results/{name}/marginalize/report.html",
    params:
        config=stage_params("marginalize"),
        folder="results/{name}/marginalize",
    log:
        "results/{name}/logs/marginalize_motifs.log",
    benchmark:
        "results/{name}/benchmarks/marginalize_motifs.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/marginalize_motifs.py"
