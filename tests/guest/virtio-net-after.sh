# Sourced by the nested rig's outer guest after vmctl exits.
kill $fetcher 2>/dev/null
wait $fetcher 2>/dev/null
