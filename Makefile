# The README's two commands: `make demo` (run) and `make test` (tests). Each sets itself up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.requirements.txt

.PHONY: demo test setup lint vendor

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	# Datumaro (tests only) declares opencv<5 and pillow~=12 but runs with our pins: no resolver for it.
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	cat requirements.txt requirements-nodeps.txt > $(STAMP)

setup: $(STAMP)

# The browser app's ES modules (labelhub/app): npm installs the pinned lock file, then the module builds
# are copied into static/app/vendor (gitignored), so the user builds nothing.
VENDOR := labelhub/app/static/app/vendor
VENDOR_STAMP := $(VENDOR)/.package-lock.json

$(VENDOR_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/konva
	cd node_modules/konva/lib && find . -name '*.js' -exec cp --parents {} ../../../$(VENDOR)/konva/ \;
	cp node_modules/konva/LICENSE $(VENDOR)/konva/LICENSE
	# onnxruntime-web's WASM backend only (browser SAM decode): the ESM bundle, its loader (also each
	# decoder thread's worker script) and the SIMD .wasm.
	mkdir -p $(VENDOR)/onnxruntime-web
	cd node_modules/onnxruntime-web/dist && cp ort.wasm.min.mjs ort-wasm-simd-threaded.mjs \
		ort-wasm-simd-threaded.wasm ../../../$(VENDOR)/onnxruntime-web/
	cp node_modules/onnxruntime-web/package.json $(VENDOR)/onnxruntime-web/package.json
	# preact + htm (the app's forms and lists, no build step) and idb-keyval (drafts): their ES modules.
	mkdir -p $(VENDOR)/preact $(VENDOR)/htm $(VENDOR)/idb-keyval
	cp node_modules/preact/dist/preact.module.js node_modules/preact/hooks/dist/hooks.module.js \
		node_modules/preact/LICENSE $(VENDOR)/preact/
	cp node_modules/htm/dist/htm.module.js node_modules/htm/preact/index.module.js node_modules/htm/LICENSE \
		$(VENDOR)/htm/
	cp node_modules/idb-keyval/dist/index.js node_modules/idb-keyval/LICENCE $(VENDOR)/idb-keyval/
	# OpenSeadragon (tiled gigapixel images): its UMD build, loaded by a classic script tag, and its icons.
	mkdir -p $(VENDOR)/openseadragon
	cp -r node_modules/openseadragon/build/openseadragon/openseadragon.min.js \
		node_modules/openseadragon/build/openseadragon/images node_modules/openseadragon/LICENSE.txt \
		$(VENDOR)/openseadragon/
	cp package-lock.json $(VENDOR_STAMP)

vendor: $(VENDOR_STAMP)

demo: $(STAMP) $(VENDOR_STAMP)
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py demo $(ARGS)

test: $(STAMP) $(VENDOR_STAMP)
	bin/test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check labelhub workers tests benchmarks
