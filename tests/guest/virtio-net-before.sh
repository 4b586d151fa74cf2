# Sourced by the nested rig's outer guest before vmctl starts: a web server the inner guest downloads
# from (slirp maps 10.0.2.2 to this side's loopback), and a client that fetches from the inner guest's
# port 80 through vmctl's hostfwd 127.0.0.1:5555 once it answers. It prints nothing while the inner guest
# runs (the two would interleave on the console): after.sh reports its result.
ip link set lo up
httpd -p 8080 -h /rig/www || echo "RIG: httpd failed"
(
    for i in $(seq 240); do
        # (busybox wget crashes in the static glibc resolver; nc does not resolve)
        printf 'GET /from-outer HTTP/1.1\r\nHost: inner\r\n\r\n' | timeout 5 nc 127.0.0.1 5555 > /tmp/fwd 2>/dev/null
        if grep -q '^HTTP/1.0 200' /tmp/fwd; then
            echo "RIG: hostfwd fetched: $(tail -1 /tmp/fwd)" > /tmp/fwd.result
            exit 0
        fi
        sleep 0.5
    done
    echo "RIG: hostfwd fetch failed" > /tmp/fwd.result
) > /dev/null 2>&1 &
fetcher=$!
