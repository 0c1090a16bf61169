# Replace the n-th occurrence of `find` inside the definition of function `func` with `repl`.
# Usage: awk -v func_name=F -v n=N -v find=S -v repl=R -f apply.awk FILE > OUT
# The definition starts at a line that begins (column 0) with the function's name or with a
# type followed by it, and is no prototype; it ends at the first line that is just "}".
# Exit status 3 when the occurrence is not there (nothing changed).
BEGIN { inside = 0; seen = 0; done = 0 }
{
    line = $0
    if (!inside && !done && line ~ ("^([A-Za-z_].*[ *])?" func_name "\\(") && line !~ /;[ \t]*$/) {
        inside = 1
    }
    if (inside && !done) {
        p = index(line, find)
        while (p > 0) {
            seen++
            if (seen == n) {
                line = substr(line, 1, p - 1) repl substr(line, p + length(find))
                done = 1
                break
            }
            q = index(substr(line, p + length(find)), find)
            p = (q > 0) ? p + length(find) + q - 1 : 0
        }
        if (line ~ /^}/) inside = 0
    }
    print line
}
END { if (!done) exit 3 }
