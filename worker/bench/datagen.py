"""Benchmark input files: an xlsx with one sheet `Data` and a CSV, with the same ten
columns (strings, integers, floats, a date-time), generated once and cached by size.

The xlsx is written as raw SpreadsheetML with zipfile, not with openpyxl: openpyxl's
write_only mode needs minutes for a million rows, this needs seconds. By default strings
go to a shared-string table (sharedStrings.xml) like Excel and openpyxl write them, so a
reader pays for a table that grows with the file, as it would on a real export; `inline`
strings are the other option. Values are derived from the row number (no randomness), so
a cached file is identical to a regenerated one.

Standard library only: the driver runs this before the venv exists.
"""

import json
import os
import zipfile

COLUMNS = [
    "VM",
    "Powerstate",
    "CPUs",
    "Memory",
    "Provisioned MB",
    "Host",
    "Cluster",
    "OS",
    "Created",
    "Cost",
]
LETTERS = "ABCDEFGHIJ"
POWER_STATES = ["poweredOn", "poweredOff", "suspended"]
HOSTS = [f"esx-{n:03d}.example.com" for n in range(500)]
CLUSTERS = [f"cluster-{n:02d}" for n in range(20)]
OSES = [
    "Microsoft Windows Server 2019 (64-bit)",
    "Microsoft Windows Server 2016 (64-bit)",
    "Red Hat Enterprise Linux 8 (64-bit)",
    "Ubuntu Linux (64-bit)",
    "SUSE Linux Enterprise 15 (64-bit)",
    "Oracle Linux 7 (64-bit)",
]
# A prime-length cycle of date-times, precomputed once: computing a datetime per row
# would dominate the generation time. Excel serial: days since 1899-12-30.
DATE_CYCLE = 10007
EXCEL_BASE_SERIAL = 44927  # 2023-01-01


def _date_cycle():
    import datetime

    base = datetime.datetime(2023, 1, 1)
    serials, isos = [], []
    for n in range(DATE_CYCLE):
        minutes = (n * 7919) % (3 * 365 * 1440)
        serials.append(repr(EXCEL_BASE_SERIAL + minutes / 1440))
        isos.append((base + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S"))
    return serials, isos


def row_values(i):
    """The values of data row i (0-based) as strings, numbers already formatted."""
    cents = (i % 9973) * 37
    return (
        f"vm-{i:07d}",
        POWER_STATES[0 if i % 10 < 8 else (1 if i % 10 == 8 else 2)],
        str(1 << (i % 5)),
        str(1024 * (1 + i % 64)),
        repr((i % 100000) * 1.25 + 0.5),
        HOSTS[i % len(HOSTS)],
        CLUSTERS[i % len(CLUSTERS)],
        OSES[i % len(OSES)],
        None,  # date: filled by the caller from the cycle
        f"{cents // 100}.{cents % 100:02d}",
    )


# ---------------------------------------------------------------- CSV


def write_csv(path, target_mb):
    """Writes rows until the file reaches target_mb megabytes; returns the row count."""
    _, isos = _date_cycle()
    target = int(target_mb * 1_000_000)
    written, rows, i = 0, 0, 0
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        header = ",".join(COLUMNS) + "\n"
        out.write(header)
        written += len(header)
        while written < target:
            lines = []
            for i in range(rows, rows + 10_000):
                v = row_values(i)
                lines.append(
                    f"{v[0]},{v[1]},{v[2]},{v[3]},{v[4]},{v[5]},{v[6]},{v[7]},"
                    f"{isos[i % DATE_CYCLE]},{v[9]}\n"
                )
            chunk = "".join(lines)
            # Trim the last batch so the file stops near the target, not 10k rows later.
            if written + len(chunk) > target:
                keep = []
                for line in lines:
                    if written >= target:
                        break
                    keep.append(line)
                    written += len(line)
                out.write("".join(keep))
                rows += len(keep)
                break
            out.write(chunk)
            written += len(chunk)
            rows += len(lines)
    os.replace(tmp, path)
    return rows


# ---------------------------------------------------------------- XLSX

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

CONTENT_TYPES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>
</Types>"""

ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{NS_PKG_REL}">
<Relationship Id="rId1" Type="{NS_REL}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""

WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">
<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets>
</workbook>"""

WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{NS_PKG_REL}">
<Relationship Id="rId1" Type="{NS_REL}/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="{NS_REL}/styles" Target="styles.xml"/>
<Relationship Id="rId3" Type="{NS_REL}/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""

# Style 1 is the built-in date-time format 22 (m/d/yy h:mm): readers see a date cell.
STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="{NS_MAIN}">
<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill>
<fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


class _SharedStrings:
    """Fixed strings first, then one VM name per row at a computable index, so no
    dictionary of a million strings is needed while writing the sheet."""

    def __init__(self, rows):
        self.fixed = COLUMNS + POWER_STATES + HOSTS + CLUSTERS + OSES
        self.index = {s: n for n, s in enumerate(self.fixed)}
        self.rows = rows

    def vm_index(self, i):
        return len(self.fixed) + i

    def write(self, zf):
        total = len(self.fixed) + self.rows
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=self.rows > 2_000_000) as out:
            out.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="{NS_MAIN}" count="{total}" uniqueCount="{total}">'.encode()
            )
            out.write("".join(f"<si><t>{s}</t></si>" for s in self.fixed).encode())
            for start in range(0, self.rows, 50_000):
                end = min(start + 50_000, self.rows)
                out.write(
                    "".join(f"<si><t>vm-{i:07d}</t></si>" for i in range(start, end)).encode()
                )
            out.write(b"</sst>")


def _string_cell(ref, text, sst, shared_index):
    if sst is None:
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'
    return f'<c r="{ref}" t="s"><v>{shared_index}</v></c>'


def _sheet_rows(rows, sst, serials):
    """Yields the sheet XML of the data rows in batches."""
    string_cols = {0, 1, 5, 6, 7}
    for start in range(0, rows, 10_000):
        parts = []
        for i in range(start, min(start + 10_000, rows)):
            r = i + 2  # row 1 is the header
            v = row_values(i)
            cells = []
            for c in range(10):
                ref = f"{LETTERS[c]}{r}"
                if c in string_cols:
                    idx = sst.vm_index(i) if (sst and c == 0) else (sst.index[v[c]] if sst else 0)
                    cells.append(_string_cell(ref, v[c], sst, idx))
                elif c == 8:
                    cells.append(f'<c r="{ref}" s="1"><v>{serials[i % DATE_CYCLE]}</v></c>')
                else:
                    cells.append(f'<c r="{ref}"><v>{v[c]}</v></c>')
            parts.append(f'<row r="{r}">{"".join(cells)}</row>')
        yield "".join(parts).encode()


def write_xlsx(path, rows, strings="shared"):
    """Writes an xlsx whose sheet `Data` has a header row and `rows` data rows."""
    if strings not in ("shared", "inline"):
        raise ValueError(f"strings must be shared or inline, not {strings!r}")
    serials, _ = _date_cycle()
    sst = _SharedStrings(rows) if strings == "shared" else None
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=rows > 1_000_000) as out:
            out.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<worksheet xmlns="{NS_MAIN}"><dimension ref="A1:J{rows + 1}"/>'
                f'<sheetData><row r="1">'.encode()
            )
            header = [
                _string_cell(f"{LETTERS[c]}1", name, sst, sst.index[name] if sst else 0)
                for c, name in enumerate(COLUMNS)
            ]
            out.write(("".join(header) + "</row>").encode())
            for chunk in _sheet_rows(rows, sst, serials):
                out.write(chunk)
            out.write(b"</sheetData></worksheet>")
        if sst is not None:
            sst.write(zf)
        else:
            zf.writestr(
                "xl/sharedStrings.xml",
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="{NS_MAIN}" count="0" uniqueCount="0"/>',
            )
    os.replace(tmp, path)


# ---------------------------------------------------------------- cache


def _meta_path(path):
    return path + ".meta.json"


def cached_xlsx(cache_dir, rows, strings="shared"):
    """Path and metadata of the cached xlsx of `rows` rows, generating it if missing."""
    return _cached(
        os.path.join(cache_dir, f"data-{rows}-rows-{strings}.xlsx"),
        lambda path: (write_xlsx(path, rows, strings), rows)[1],
    )


def cached_csv(cache_dir, mb):
    """Path and metadata of the cached CSV of about `mb` megabytes."""
    return _cached(os.path.join(cache_dir, f"data-{mb}mb.csv"), lambda path: write_csv(path, mb))


def _cached(path, generate):
    import time

    meta_path = _meta_path(path)
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            return path, json.load(f)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    started = time.perf_counter()
    rows = generate(path)
    meta = {
        "rows": rows,
        "bytes": os.path.getsize(path),
        "generation_s": round(time.perf_counter() - started, 2),
    }
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    return path, meta
