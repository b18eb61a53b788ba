# Compares /app/input/res/predictions.txt with /app/input/ref/expected.txt.
set -e
res=/app/input/res/predictions.txt
ref=/app/input/ref/expected.txt
echo "scoring $(wc -l < "$ref") lines"
awk 'NR == FNR { p[FNR] = $1; next }
     { t++; if (p[FNR] == $1) c++ }
     END { printf "{\"accuracy\": %.6f, \"count\": %d}\n", c / t, t }' "$res" "$ref" > /app/output/scores.json
echo "<html><body><p>accuracy table</p></body></html>" > /app/output/detailed_results.html
echo "scoring note" >&2
echo "scored"
