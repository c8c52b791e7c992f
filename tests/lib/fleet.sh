# shellcheck shell=bash
#  tests/lib/fleet.sh: what the fleet tests (t0300, t0320) measure, from the
#  witnesses lib.sh records: libvirt's lifecycle events of every domain of a
#  node (sf_lifewatch_node) and samples of the image stores' temporary files
#  (sf_storewatch). Pure text processing (awk, jq), no daemons; sourced
#  after lib.sh. Times are CLOCK_REALTIME epoch ms of this host (both
#  witnesses use it).
#
#    fleet_pauses EVENTS...
#        One line "START END DOMAIN@NODE" per SUSPENDED..RESUMED interval of
#        the lifewatch-node-NODE.events files given (NODE from the file
#        name); END is "open" when no RESUMED followed (the guest was left
#        paused, or the watch stopped first). Sorted by START. START and
#        END are ms on the monotonic clock (the events' mono_us; sf_mono_ms
#        gives now on it), so a step of the wall clock, seen here in CI, does
#        not lengthen or shift a pause; the wall clock only for lines
#        without mono_us.
#    fleet_uploads SAMPLES
#        One line "START END NAME" per temporary file seen in a
#        sf_storewatch samples file: START = first sample that showed it,
#        END = first sample that no longer did ("open" if it never went).
#        NAME is the file's base name. Sorted by START.
#    fleet_max_overlap
#        Reads "START END LABEL..." lines (END may be "open" = forever) and
#        prints "MAX AT_MS LABELS": the most intervals open at one instant,
#        the first instant that count was reached and the comma-separated
#        labels open then (0 0 - for no input). Intervals are half-open
#        [START, END): one that ends at T and one that starts at T do not
#        overlap.
#    fleet_samples_max SAMPLES
#        The largest count in a samples file (0 if none).
#    fleet_samples_end SAMPLES
#        The END line's "samples=N max_gap_ms=G" (empty if it has none).
#    fleet_json_last EVENT FILE
#        The last JSON line of FILE whose .event is EVENT (empty if none);
#        lines that are not JSON are ignored.

fleet_pauses ()
{
    local f node
    for f in "$@"; do
        node=${f##*/lifewatch-node-}
        node=${node%.events}
        awk -v node="$node" '
            {
                dom = ""
                t = $1
                for (i = 4; i <= NF; i++) {
                    if ($i ~ /^dom=/) dom = substr($i, 5)
                    else if ($i ~ /^mono_us=[0-9][0-9][0-9][0-9]+$/)
                        t = substr($i, 9, length($i) - 11)     # us -> ms, as text (mawk
                                                               # prints big numbers as 8.1e+11)
                }
                if (dom == "") next
                if ($2 == "SUSPENDED" && !(dom in open)) open[dom] = t
                else if ($2 == "RESUMED" && (dom in open)) {
                    print open[dom], t, dom "@" node
                    delete open[dom]
                }
                else if (($2 == "STOPPED" || $2 == "CRASHED") && (dom in open)) {
                    print open[dom], t, dom "@" node
                    delete open[dom]
                }
            }
            END { for (d in open) print open[d], "open", d "@" node }' "$f"
    done | sort -n -k1,1
}

fleet_uploads ()
{
    awk '
        $2 == "END" { next }
        {
            delete now
            for (i = 3; i <= NF; i++) {
                n = $i
                sub(/.*\//, "", n)
                now[n] = 1
                if (!(n in start)) { start[n] = $1; order[++count] = n }
            }
            for (n in seen) if (!(n in now) && !(n in stop)) stop[n] = $1
            delete seen
            for (n in now) seen[n] = 1
        }
        END {
            for (i = 1; i <= count; i++) {
                n = order[i]
                print start[n], (n in stop) ? stop[n] : "open", n
            }
        }' "${1:?usage: fleet_uploads SAMPLES}" | sort -n -k1,1
}

fleet_max_overlap ()
{
    awk '
        NF >= 2 {
            k++
            lab[k] = (NF >= 3) ? $3 : ("#" k)
            print $1, 1, k, lab[k]
            if ($2 != "open") print $2, 0, k, lab[k]
        }' | sort -n -k1,1 -k2,2 |
        awk '
            {
                if ($2 == 1) { cur++; open[$3] = $4 }
                else { cur--; delete open[$3] }
                if (cur > max) {
                    max = cur
                    at = $1
                    labels = ""
                    for (k in open) labels = labels (labels == "" ? "" : ",") open[k]
                }
            }
            END { printf "%d %s %s\n", max, (max ? at : 0), (max ? labels : "-") }'
}

fleet_samples_max ()
{
    awk '$2 != "END" && $2 + 0 > m { m = $2 + 0 } END { print m + 0 }' \
        "${1:?usage: fleet_samples_max SAMPLES}"
}

fleet_samples_end ()
{
    awk '$2 == "END" { $1 = ""; $2 = ""; sub(/^ +/, ""); line = $0 } END { print line }' \
        "${1:?usage: fleet_samples_end SAMPLES}"
}

fleet_json_last ()
{
    local ev=${1:?usage: fleet_json_last EVENT FILE} file=${2:?}
    jq -R -c --arg e "$ev" 'fromjson? | select(type == "object" and .event == $e)' "$file" |
        tail -n 1
}
