echo "ingestion starting"
sh /app/ingested_program/model.sh predict < /app/input_data/numbers.txt > /app/output/predictions.txt
echo "ingestion note" >&2
echo "ingestion done"
