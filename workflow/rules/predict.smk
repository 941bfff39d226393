rule predict_peaks:
    input:
        unpack(predict_inputs),
    output:
        profile="results/{name}/predict/{name}.profile.npz",
        counts="results/{name}/predict/{name}.counts.npz",
    params:
        config=stage_params("predict"),
    log:
        "results/{name}/logs/predict_peaks.log",
    benchmark:
        "results/{name}/benchmarks/predict_peaks.tsv"
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/predict_peaks.py"


rule export_predicted_bigwig:
    input:
        unpack(predict_fasta),
        profile="results/{name}/predict/{name}.profile.npz",
        counts="results/{name}/predict/{name}.counts.npz",
    output:
        "results/{name}/predict/{name}.predicted.{track}.bw",
    log:
        "results/{name}/logs/export_predicted_bigwig.{track}.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/export_predicted_bigwig.py"
