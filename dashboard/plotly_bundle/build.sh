#!/usr/bin/env bash
# Rebuild dashboard/assets/vendor/plotly-zhili-<version>.min.js: plotly.js with only the
# traces the dashboard draws (entry.js), about a fifth of the full bundle to parse, so the
# first map does not wait ~2 s for plotly.js to evaluate. Not part of the install: the
# built file is committed. Keep the version equal to the Python plotly's bundled plotly.js
# (tests/dashboard/test_formats.py checks it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${1:-4.1.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/entry.js" "$work/"
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "plotly.js@$version" esbuild >/dev/null
node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly \
  --define:global=window --define:define.amd=false --define:process.env.NODE_DEBUG=false \
  --target=es2016 --alias:stream=stream-browserify --loader:.css=empty --legal-comments=none \
  --banner:js="/*! plotly.js v$version (core, bar, scattergeo, choropleth, sankey) | MIT License | Copyright (c) Plotly, Inc. */" \
  --outfile="$here/../assets/vendor/plotly-zhili-$version.min.js"
