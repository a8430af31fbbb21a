# Independent reference for tests/real_series.rs: loads a CT folder with pydicom + numpy
# (sorted along the slice normal, rescaled to HU) and prints what the Rust loader must match.
import sys, glob, json, numpy as np, pydicom
files = sorted(glob.glob(sys.argv[1] + "/*.dcm"))
ds = [pydicom.dcmread(f) for f in files]
o = np.array(ds[0].ImageOrientationPatient, float); n = np.cross(o[:3], o[3:])
ds.sort(key=lambda d: float(np.dot(n, np.array(d.ImagePositionPatient, float))))
pos = np.array([d.ImagePositionPatient for d in ds], float)
hu = np.stack([d.pixel_array.astype(np.float64) * float(getattr(d, "RescaleSlope", 1)) + float(getattr(d, "RescaleIntercept", 0)) for d in ds]).round().astype(np.int16)
mid = hu[len(ds)//2]
soft = mid[(mid > -200) & (mid < 200)]
print(json.dumps({"n": len(ds), "rows": int(ds[0].Rows), "cols": int(ds[0].Columns), "ps": [float(x) for x in ds[0].PixelSpacing],
 "first": pos[0].tolist(), "last": pos[-1].tolist(), "step": float(np.median(np.diff(pos @ n))),
 "corner": float(np.median(mid[:20,:20])), "soft_median": float(np.median(soft)), "min": int(hu.min()), "max": int(hu.max()),
 "samples": [[int(z), int(y), int(x), int(hu[z,y,x])] for z,y,x in [(0,0,0),(len(ds)//2,256,256),(len(ds)-1,300,200),(len(ds)//3,100,400)]]}))
