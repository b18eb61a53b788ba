# Sleeps $1 seconds, then writes correct predictions.
echo "slow start"
sleep "${1:-8}"
printf '2\n4\n6\n' > /app/output/predictions.txt
echo "slow done"
