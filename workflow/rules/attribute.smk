rule attribute_peaks:
    input:
        unpack(attribute_inputs),
    output:
        ohe="results/{name}/attribute/{name}.ohe.npz",
        attr="results/{name}/attribute/{name}.attr.npz",
        loci="results/{name}/attribute/{name}.loci.tsv",
        bigwig="results/{name}/attribute/{name}.contrib.bw",
    params:
        config=stage_params("attribute"),
    log:
        "results/{name}/logs/attribute_peaks.log",
    benchmark:
        "results/{name}/benchmarks/attribute_peaks.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/attribute_peaks.py"
