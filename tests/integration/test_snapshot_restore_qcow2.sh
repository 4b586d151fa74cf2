# test_snapshot_restore_qcow2: test_snapshot_restore with the guest's disk a qcow2 overlay (made by
# vmctl disk create over the raw image): snapshots copy the overlay, restores put it back under a
# stopped or running VM (the running device re-reads the image's metadata), `vmctl run --restore`
# takes the snapshot directory.
# timeout: 600
# duration: 39
DISK_FORMAT=qcow2 exec bash "$(dirname "$0")/test_snapshot_restore.sh"
