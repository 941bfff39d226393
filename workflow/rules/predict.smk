rule predict_peaks:
    wildcard_constraints:
        name=SINGLE,
    input:
        unpack(predict_inputs),
    output:
        profile=layout.path("profile"),
        counts=layout.path("counts"),
    params:
        config=stage_params("predict"),
    log:
        layout.log("predict_peaks"),
    benchmark:
        layout.benchmark("predict_peaks")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/predict_peaks.py"


rule export_predicted_bigwig:
    input:
        unpack(predict_fasta),
        profile=layout.path("profile"),
        counts=layout.path("counts"),
    output:
        layout.path("predicted_bigwig"),
    log:
        layout.log("export_predicted_bigwig.{track}"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/export_predicted_bigwig.py"
