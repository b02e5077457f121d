"""bstls: a throwaway certificate authority for the TLS tests, made with
the openssl command line."""

import os

from bsbase import Failure
from bsproc import run_cmd


class CA:
    """A CA made with the openssl command line in folder d."""

    def __init__(self, d, name):
        self.d = d
        self.name = name
        self.crt = self.path("crt")
        self.key = self.path("key")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", self.key, "-out", self.crt, "-days", "2",
                     "-subj", "/CN=%s" % name)

    def path(self, ext, name=None):
        return os.path.join(self.d, "%s.%s" % (name or self.name, ext))

    def openssl(self, *args):
        r = run_cmd(["openssl"] + list(args), timeout=30)
        if r.returncode != 0:
            raise Failure("openssl %s exited %d: %s"
                                 % (args[0], r.returncode, r.stderr))

    def issue(self, name, cn, ext):
        """A key and a certificate for cn signed by this CA, with the
        extensions in ext (openssl -extfile lines); returns (crt, key)."""
        key, csr = self.path("key", name), self.path("csr", name)
        crt, extf = self.path("crt", name), self.path("ext", name)
        with open(extf, "w") as f:
            f.write(ext)
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
        self.openssl("x509", "-req", "-in", csr, "-CA", self.crt,
                     "-CAkey", self.key, "-CAcreateserial", "-days", "2",
                     "-out", crt, "-extfile", extf)
        os.chmod(key, 0o600)
        return crt, key
