# ChromBPNet's bias model: the given `bias_model` file, else the bias part of
# a given full `model`, else trained on low-count background regions; then
# checked before anything uses it. Last, the accessibility model is checked
# for what the bias model should have taken: the enzyme's preference.


rule extract_bias_model:
    wildcard_constraints:
        name=EXTRACTS_BIAS,
    input:
        model_file("model"),
    output:
        "results/{name}/bias_fit/{name}.bias.torch",
    log:
        "results/{name}/logs/extract_bias_model.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/extract_bias_model.py"


rule fit_bias_model:
    wildcard_constraints:
        name=FITS_BIAS,
    input:
        unpack(bias_fit_inputs),
    output:
        model=protected("results/{name}/bias_fit/{name}.bias.torch"),
        history="results/{name}/bias_fit/{name}.bias.history.tsv",
    params:
        config=stage_params("bias_fit"),
    log:
        "results/{name}/logs/fit_bias_model.log",
    benchmark:
        "results/{name}/benchmarks/fit_bias_model.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_bias_model.py"


rule attribute_bias_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_qc_inputs),
    output:
        ohe="results/{name}/bias_qc/{name}.bias.ohe.npz",
        attr="results/{name}/bias_qc/{name}.bias.attr.npz",
    params:
        config=stage_params("bias_qc"),
    log:
        "results/{name}/logs/attribute_bias_model.log",
    benchmark:
        "results/{name}/benchmarks/attribute_bias_model.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/attribute_bias_model.py"


rule discover_bias_motifs:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        ohe="results/{name}/bias_qc/{name}.bias.ohe.npz",
        attr="results/{name}/bias_qc/{name}.bias.attr.npz",
    output:
        "results/{name}/bias_qc/{name}.bias.modisco.h5",
    params:
        n_seqlets=stage_value("bias_qc", "n_seqlets"),
        window=stage_value("bias_qc", "window"),
    log:
        "results/{name}/logs/discover_bias_motifs.log",
    benchmark:
        "results/{name}/benchmarks/discover_bias_motifs.tsv"
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/discover_bias_motifs.py"


rule qc_bias_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_qc_inputs),
        h5="results/{name}/bias_qc/{name}.bias.modisco.h5",
    output:
        json="results/{name}/bias_qc/qc.json",
        html="results/{name}/bias_qc/qc.html",
        motifs="results/{name}/bias_qc/motifs/motifs.tsv",
    params:
        config=stage_params("bias_qc"),
        folder=lambda wildcards, output: os.path.dirname(output.json),
    log:
        "results/{name}/logs/qc_bias_model.log",
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/qc_bias_model.py"


rule qc_accessibility_model:
    wildcard_constraints:
        name=CHROMBPNET,
    input:
        unpack(bias_free_qc_inputs),
    output:
        json="results/{name}/bias_free_qc/qc.json",
        html="results/{name}/bias_free_qc/qc.html",
        footprints="results/{name}/bias_free_qc/footprints.tsv",
        figure="results/{name}/bias_free_qc/footprints.png",
    params:
        config=stage_params("bias_free_qc"),
        folder=lambda wildcards, output: os.path.dirname(output.json),
    log:
        "results/{name}/logs/qc_accessibility_model.log",
    benchmark:
        "results/{name}/benchmarks/qc_accessibility_model.tsv"
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=120,
    threads: workflow.cores
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/qc_accessibility_model.py"
