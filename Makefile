# Two commands do everything on a machine with python3 (>= 3.11) and pip:
#   make demo        set up .venv, simulate the demo data, run the whole BPNet pipeline
#   make demo-atac   the same for the ChromBPNet demo (simulated ATAC-seq)
#   make test        set up .venv, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# torch is installed first and on its own: 2.13.0 resolves to the CPU build
# where a local wheel is provided, and to PyPI's default build elsewhere.
# Override for another build, e.g. make TORCH='torch==2.13.0 --index-url ...'.
TORCH ?= torch==2.13.0

.PHONY: install demo demo-data demo-folds demo-atac demo-atac-data demo-raw demo-raw-data test lint schema benchmark-batch benchmark-reads benchmark-speed benchmark-accuracy benchmark-motif-hits acceptance-real clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo-data: install
	$(BIN)/bpnet-core demo-data resources/demo > /dev/null

demo: demo-data
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.json
	@echo
	@echo "Results in results/demo/:"
	@find results/demo -type f -not -path '*/logs/*' -not -path '*/benchmarks/*' -not -path '*/finemo/*' | sort | sed 's/^/  /'
	@echo
	@echo "Validation performance (chr2 peaks), results/demo/evaluate/demo.performance.tsv:"
	@column -t -s "$$(printf '\t')" results/demo/evaluate/demo.performance.tsv | sed 's/^/  /'
	@echo
	@echo "TF-MoDISco patterns and their best match in resources/demo/motifs.meme (results/demo/modisco/report/):"
	@cut -f1-5 results/demo/modisco/report/motifs.tsv | column -t -s "$$(printf '\t')" | sed 's/^/  /'
	@echo
	@echo "Motif hits (Fi-NeMo) in the attributed chr2 peaks (results/demo/motif_hits/, Fi-NeMo's report in finemo/report/):"
	@column -t -s "$$(printf '\t')" results/demo/motif_hits/demo.hit_counts.tsv | sed 's/^/  /'
	@echo
	@echo "Marginalization on chr2 background (results/demo/marginalize/summary.tsv):"
	@column -t -s "$$(printf '\t')" results/demo/marginalize/summary.tsv | sed 's/^/  /'

# The BPNet demo as a 3-fold ensemble: one model per chromosome fold, outputs averaged (docs/folds.md).
demo-folds: demo-data
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo_folds.json
	@echo
	@echo "Held-out metrics per fold, their mean and sd (results/demo_folds/evaluate/demo_folds.folds.tsv):"
	@column -t -s "$$(printf '\t')" results/demo_folds/evaluate/demo_folds.folds.tsv | sed 's/^/  /'
	@echo
	@echo "TF-MoDISco patterns of the averaged contributions (results/demo_folds/modisco/report/):"
	@cut -f1-5 results/demo_folds/modisco/report/motifs.tsv | column -t -s "$$(printf '\t')" | sed 's/^/  /'
	@echo
	@echo "Marginalization averaged over the folds (results/demo_folds/marginalize/summary.tsv):"
	@column -t -s "$$(printf '\t')" results/demo_folds/marginalize/summary.tsv | sed 's/^/  /'
	@echo "Report: results/demo_folds/demo_folds.report.html"

demo-atac-data: install
	$(BIN)/bpnet-core demo-data resources/demo_atac --assay atac > /dev/null

demo-atac: demo-atac-data
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo_atac.json
	@echo
	@echo "Bias model QC (results/demo_atac/bias_qc/qc.json; TF-MoDISco patterns of the bias model at peaks):"
	@grep -E '"(flagged|pearson)"' results/demo_atac/bias_qc/qc.json | sed 's/^ */  /'
	@cut -f1-5 results/demo_atac/bias_qc/motifs/motifs.tsv | column -t -s "$$(printf '\t')" | sed 's/^/  /'
	@echo
	@echo "Validation performance of the full model (chr2 peaks), results/demo_atac/evaluate/demo_atac.performance.tsv:"
	@column -t -s "$$(printf '\t')" results/demo_atac/evaluate/demo_atac.performance.tsv | sed 's/^/  /'
	@echo
	@echo "TF-MoDISco patterns of the accessibility model (results/demo_atac/modisco/report/):"
	@cut -f1-5 results/demo_atac/modisco/report/motifs.tsv | column -t -s "$$(printf '\t')" | sed 's/^/  /'
	@echo
	@echo "Marginalization with the accessibility model (results/demo_atac/marginalize/summary.tsv):"
	@column -t -s "$$(printf '\t')" results/demo_atac/marginalize/summary.tsv | sed 's/^/  /'

demo-raw-data: install
	$(BIN)/bpnet-core demo-data resources/demo_raw --reads > /dev/null

# The ChIP demo from BAM files, with peaks called by MACS3 (no `loci` in the config).
demo-raw: demo-raw-data
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo_raw.json
	@echo
	@echo "Inputs made from the BAMs (results/demo_raw/inputs/):"
	@ls results/demo_raw/inputs | sed 's/^/  /'
	@echo "  $$(wc -l < results/demo_raw/inputs/peaks.narrowPeak) MACS3 peaks"
	@echo
	@echo "Validation performance (chr2 peaks), results/demo_raw/evaluate/demo_raw.performance.tsv:"
	@column -t -s "$$(printf '\t')" results/demo_raw/evaluate/demo_raw.performance.tsv | sed 's/^/  /'

test: install
	$(BIN)/python -m pytest -q

# Workflow overhead of a 500-dataset batch: dry run and no-op rerun (about 2 minutes).
benchmark-batch: install
	$(BIN)/python benchmarks/batch_dag.py --datasets 500

# Lints the workflow as the demo config loads it (so the demo's data first).
lint: demo-data
	$(BIN)/snakemake --lint --configfile config/demo.json

# Regenerate the JSON Schema of the configs after changing the models in bpnet_core/config/.
schema: install
	$(BIN)/bpnet-core schema > workflow/schemas/config.schema.json

# Reads to bigWigs against the bam2bw script (a benchmark-only dependency), about 1 minute.
benchmark-reads: install
	$(BIN)/pip install --quiet --no-deps bam2bw==0.5.1
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(BIN)/python benchmarks/reads_to_bigwig.py

# Training, prediction, DeepLIFT/SHAP and loading against bpnet-lite (a
# benchmark-only dependency, installed without its dependencies), about 15 minutes.
benchmark-speed: install
	$(BIN)/pip install --quiet --no-deps bpnet-lite==1.1.0
	$(BIN)/python benchmarks/speed.py

# Motif hits of `make demo`'s run against the planted instances (run make demo first).
benchmark-motif-hits: install
	$(BIN)/python benchmarks/motif_hits.py --results results/demo --data resources/demo

# Held-out accuracy against bpnet-lite, trained to the end on the same data,
# config and seeds (3 seeds x 2 datasets x 3 trainings), about 2 hours on 2 cores.
benchmark-accuracy: install
	$(BIN)/pip install --quiet --no-deps bpnet-lite==1.1.0
	$(BIN)/python benchmarks/accuracy.py --output results/benchmarks/accuracy.tsv

# The ChromBPNet pipeline from raw fragments on real yeast ATAC-seq, kept
# outside the project (REAL_DATA); about 7 minutes on 2 idle cores.
REAL_DATA ?= ../shared/data/yeast_atac_real
acceptance-real: install
	$(BIN)/python benchmarks/real_atac.py --data $(REAL_DATA) --cores $(CORES)

clean:
	rm -rf results resources/demo resources/demo_atac resources/demo_raw .snakemake
