# Fold ensembles (`folds`): one model per fold, each its own job ({fold}
# wildcard; on SLURM one GPU job per fold), trained on the fold's training
# chromosomes, evaluated on its test chromosomes, run on the same loci as
# every other fold; then the folds' outputs are averaged into the files a
# single-model run writes, which TF-MoDISco, motif hits, bigWigs, the
# report and the summary read as before. The bias model of ChromBPNet is
# shared by the folds (bias.smk).


rule fit_fold_model:
    wildcard_constraints:
        name=FITS_BPNET_FOLDS,
    input:
        unpack(fold_fit_inputs),
    output:
        model=protected(layout.fold_path("model")),
        history=layout.fold_path("history"),
    params:
        config=fold_stage_params("fit"),
    log:
        layout.log("fit_fold_model.{fold}"),
    benchmark:
        layout.benchmark("fit_fold_model.{fold}")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_model.py"


rule fit_fold_chrombpnet:
    wildcard_constraints:
        name=FITS_CHROMBPNET_FOLDS,
    input:
        unpack(fold_fit_inputs),
    output:
        model=protected(layout.fold_path("model")),
        accessibility=protected(layout.fold_path("accessibility_model")),
        history=layout.fold_path("history"),
    params:
        config=fold_stage_params("fit"),
        accept=stage_value("bias_qc", "accept"),
    log:
        layout.log("fit_fold_chrombpnet.{fold}"),
    benchmark:
        layout.benchmark("fit_fold_chrombpnet.{fold}")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=720,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/fit_chrombpnet.py"


rule predict_fold_peaks:
    wildcard_constraints:
        name=FOLDS,
    input:
        unpack(fold_model_inputs("predict")),
    output:
        profile=layout.fold_path("profile"),
        counts=layout.fold_path("counts"),
    params:
        config=fold_stage_params("predict"),
    log:
        layout.log("predict_fold_peaks.{fold}"),
    benchmark:
        layout.benchmark("predict_fold_peaks.{fold}")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/predict_peaks.py"


rule evaluate_fold_model:
    wildcard_constraints:
        name=FOLDS,
    input:
        unpack(fold_model_inputs("evaluate")),
    output:
        performance=layout.fold_path("performance"),
        regions=layout.fold_path("regions"),
    params:
        config=fold_stage_params("evaluate"),
    log:
        layout.log("evaluate_fold_model.{fold}"),
    benchmark:
        layout.benchmark("evaluate_fold_model.{fold}")
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/evaluate_model.py"


rule attribute_fold_peaks:
    wildcard_constraints:
        name=FOLDS,
    input:
        unpack(fold_model_inputs("attribute")),
    output:
        ohe=layout.fold_path("ohe"),
        attr=layout.fold_path("attr"),
        loci=layout.fold_path("attributed_loci"),
        bigwig=layout.fold_path("contrib_bigwig"),
    params:
        config=fold_stage_params("attribute"),
    log:
        layout.log("attribute_fold_peaks.{fold}"),
    benchmark:
        layout.benchmark("attribute_fold_peaks.{fold}")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/attribute_peaks.py"


rule marginalize_fold_motifs:
    wildcard_constraints:
        name=FOLDS,
    input:
        unpack(fold_model_inputs("marginalize")),
        motifs=lambda wildcards: _fold_stage(wildcards, "marginalize").motifs,
    output:
        summary=layout.fold_path("marginalize_summary"),
        html=layout.fold_path("marginalize_html"),
    params:
        config=fold_stage_params("marginalize"),
        folder=layout.fold_path("marginalize"),
    log:
        layout.log("marginalize_fold_motifs.{fold}"),
    benchmark:
        layout.benchmark("marginalize_fold_motifs.{fold}")
    resources:
        gpu=1,
        mem_mb=gpu_mem_mb,
        runtime=240,
    threads: JOB_THREADS
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/marginalize_motifs.py"


# The averages: one coordinate index for every fold (a region one fold
# could not score is dropped for all, and counted in the log).


rule average_predictions:
    wildcard_constraints:
        name=FOLDS,
    input:
        profiles=fold_files("profile"),
        counts=fold_files("counts"),
    output:
        profile=layout.path("profile"),
        counts=layout.path("counts"),
    log:
        layout.log("average_predictions"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/average_predictions.py"


rule tabulate_fold_metrics:
    wildcard_constraints:
        name=FOLDS,
    input:
        performance=fold_files("performance"),
        regions=fold_files("regions"),
    output:
        table=layout.path("fold_table"),
        performance=layout.path("performance"),
        regions=layout.path("regions"),
    params:
        folds=fold_test_chroms,
    log:
        layout.log("tabulate_fold_metrics"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/tabulate_fold_metrics.py"


rule average_contributions:
    wildcard_constraints:
        name=FOLDS,
    input:
        unpack(predict_fasta),
        ohe=fold_files("ohe"),
        attr=fold_files("attr"),
        loci=fold_files("attributed_loci"),
    output:
        ohe=layout.path("ohe"),
        attr=layout.path("attr"),
        loci=layout.path("attributed_loci"),
        bigwig=layout.path("contrib_bigwig"),
    log:
        layout.log("average_contributions"),
    benchmark:
        layout.benchmark("average_contributions")
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/average_contributions.py"


rule average_marginalization:
    wildcard_constraints:
        name=FOLDS,
    input:
        summaries=fold_files("marginalize_summary"),
    output:
        summary=layout.path("marginalize_summary"),
        html=layout.path("marginalize_html"),
    params:
        folds=fold_names,
    log:
        layout.log("average_marginalization"),
    conda:
        "../envs/bpnet_core.yaml"
    script:
        "../scripts/average_marginalization.py"
