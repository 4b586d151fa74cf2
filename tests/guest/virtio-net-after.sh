# Sourced by the nested rig's outer guest after vmctl exits.
kill $fetcher 2>/dev/null
wait $fetcher 2>/dev/null
cat /tmp/fwd.result 2>/dev/null || echo "RIG: hostfwd fetch never finished"
