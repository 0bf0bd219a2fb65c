"""Tests of the benchmark harness itself (not of the worker): the generated files read
back right in openpyxl and pandas, the baselines give the SDK's answers, RSS is the
child's own, and the driver runs end to end against fake_worker.py.

Run with the baselines' venv (run.py creates it):
  ~/.cache/licenseware-bench/venv/bin/python -m unittest discover -s worker/bench -p 'test_*.py'
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import unittest

import datagen
import measure
import report
from contestants import PANDAS, RUST

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "manifests", "xlsx.uploader.yaml")
CSV_MANIFEST = os.path.join(HERE, "manifests", "csv.uploader.yaml")


def baseline(script, *args):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "baselines", script), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[0])


class Generated(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.xlsx = {}
        for strings in ("shared", "inline"):
            path, meta = datagen.cached_xlsx(cls.dir.name, 300, strings)
            cls.xlsx[strings] = path
            assert meta["rows"] == 300
        cls.csv, cls.csv_meta = datagen.cached_csv(cls.dir.name, 1)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_xlsx_reads_back_in_openpyxl_with_typed_cells(self):
        import openpyxl

        for strings, path in self.xlsx.items():
            wb = openpyxl.load_workbook(path, read_only=True)
            self.assertEqual(wb.sheetnames, ["Data"])
            rows = list(wb["Data"].iter_rows(values_only=True))
            self.assertEqual(len(rows), 301, strings)
            self.assertEqual(list(rows[0]), datagen.COLUMNS)
            last = rows[300]
            self.assertEqual(last[0], "vm-0000299")
            self.assertEqual(last[2], 1 << (299 % 5))
            self.assertIsInstance(last[4], float)
            self.assertIsInstance(last[8], datetime.datetime)
            wb.close()

    def test_xlsx_reads_back_in_pandas(self):
        import pandas as pd

        df = pd.read_excel(self.xlsx["shared"])
        self.assertEqual(df.shape, (300, 10))
        self.assertEqual(str(df["Created"].dtype), "datetime64[ns]")
        self.assertEqual(df["Host"][7], "esx-007.example.com")

    def test_csv_meta_counts_the_data_rows(self):
        import pandas as pd

        df = pd.read_csv(self.csv)
        self.assertEqual(len(df), self.csv_meta["rows"])
        self.assertGreaterEqual(self.csv_meta["bytes"], 1_000_000)
        self.assertLess(self.csv_meta["bytes"], 1_001_000)

    def test_validation_baselines_accept_the_file(self):
        for script in ("validate_openpyxl.py", "validate_pandas.py"):
            answer = baseline(script, "--uploader", MANIFEST, self.xlsx["shared"])
            self.assertEqual([v["status"] for v in answer["validation"]], ["success"], script)

    def test_validation_baselines_reject_a_missing_column_and_too_few_rows(self):
        with open(MANIFEST, encoding="utf-8") as f:
            text = (
                f.read()
                .replace("OS]", "OS, Licence]")
                .replace("minRowsNumber: 1", "minRowsNumber: 301")
            )
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as bad:
            bad.write(text)
            bad.flush()
            for script in ("validate_openpyxl.py", "validate_pandas.py"):
                entry = baseline(script, "--uploader", bad.name, self.xlsx["inline"])["validation"][
                    0
                ]
                self.assertEqual(entry["status"], "failed", script)
                self.assertIn("needed columns", entry["message"])
                self.assertIn(
                    "Sheet Data doesn't have the minimum number of rows: 301", entry["message"]
                )

    def test_processing_baseline_makes_one_document_per_row(self):
        answer = baseline(
            "process_pandas.py", "--uploader", MANIFEST, "--tenant", "t", self.xlsx["shared"]
        )
        self.assertEqual(answer, {"documents": 300})
        answer = baseline(
            "process_pandas.py", "--uploader", CSV_MANIFEST, "--tenant", "t", self.csv
        )
        self.assertEqual(answer, {"documents": self.csv_meta["rows"]})

    def test_driver_end_to_end_with_the_fake_worker(self):
        out = os.path.join(self.dir.name, "results.json")
        cmd = [
            sys.executable,
            os.path.join(HERE, "run.py"),
            "--worker-bin",
            os.path.join(HERE, "fake_worker.py"),
            "--xlsx-rows",
            "300",
            "--csv-mb",
            "1",
            "--repeat",
            "1",
            "--cache-dir",
            self.dir.name,
            "--out",
            out,
        ]
        # The driver finds the venv through --cache-dir: point it at the running one.
        venv_link = os.path.join(self.dir.name, "venv")
        if not os.path.exists(venv_link):
            os.symlink(os.path.dirname(os.path.dirname(sys.executable)), venv_link)
        done = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(out, encoding="utf-8") as f:
            results = json.load(f)["results"]
        self.assertEqual(len(results), 3 + 2 + 2)
        self.assertTrue(all(r["status"] == "ok" for r in results), results)
        failing = subprocess.run(
            cmd, capture_output=True, text=True, env=dict(os.environ, FAKE_WORKER_FAIL="1")
        )
        self.assertEqual(failing.returncode, 1)
        self.assertIn("not built yet", failing.stdout)


class Measure(unittest.TestCase):
    def test_peak_rss_is_the_childs_not_the_drivers(self):
        if not measure.gnu_time_available():
            self.skipTest("GNU time is not installed")
        ballast = bytearray(150 * 2**20)  # the driver is now big...
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        small = measure.run(["/bin/true"])  # ...its child is not
        self.assertLess(small.max_rss_mb, 20)
        big = measure.run([sys.executable, "-c", "x = bytearray(80 * 2**20)"])
        self.assertGreater(big.max_rss_mb, 80)

    def test_lines_exit_code_and_stderr(self):
        run = measure.run(["sh", "-c", "printf 'a\\nb\\nc'; echo oops >&2; exit 3"])
        self.assertEqual(run.stdout_lines, 3)
        self.assertEqual(run.exit_code, 3)
        self.assertIn("oops", run.stderr_tail)


def result(part, who, file, size, median_s, rss, kind="xlsx"):
    r = {
        "part": part,
        "contestant": who,
        "file": file,
        "kind": kind,
        "bytes": size,
        "rows": 1000,
        "status": "ok",
    }
    r["runs"] = [{"wall_s": median_s, "max_rss_mb": rss}]
    return report.summarise(r)


class Report(unittest.TestCase):
    def test_ratio_and_speedup_target(self):
        results = [result("a", RUST, "x", 1, 0.01, 5), result("a", PANDAS, "x", 1, 0.6, 90)]
        report.add_ratios(results)
        self.assertAlmostEqual(results[1]["ratio_vs_rust"], 60)
        self.assertEqual(report.targets(results), [(report.targets(results)[0][0], True)])
        results[1]["ratio_vs_rust"] = 49
        self.assertFalse(report.targets(results)[0][1])

    def test_flat_allows_noise_but_not_growth(self):
        flat = [result("b", RUST, "s", 1, 1, 20, "csv"), result("b", RUST, "b", 10, 10, 24, "csv")]
        self.assertTrue(all(ok for _, ok in report.flatness(flat)))
        grows = [
            result("b", RUST, "s", 1, 1, 20, "csv"),
            result("b", RUST, "b", 10, 10, 200, "csv"),
        ]
        self.assertFalse(any(ok for _, ok in report.flatness(grows)))
        self.assertIn("[FAIL] (b) Rust CSV peak RSS", report.checklist(report.targets(grows)))


if __name__ == "__main__":
    unittest.main()
