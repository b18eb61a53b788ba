# The submission: run alone it says hello; the ingestion program calls it
# with "predict" to double each number it reads.
if [ "$1" = "predict" ]; then
  while read -r n; do
    echo $((n * 2))
  done
else
  echo "submission program running"
  echo "submission note" >&2
fi
