# The Python side of scripts/bench/load-ct: loads one CT folder into an int16 HU volume with
# pydicom+numpy (sorted along the slice normal, rescaled) or SimpleITK (GDCM series reader),
# RUNS times, printing one JSON line per run.
import glob, json, sys, time
import numpy as np

def load_pydicom(folder):
    import pydicom
    ds = [pydicom.dcmread(f) for f in glob.glob(folder + "/*.dcm")]
    o = np.array(ds[0].ImageOrientationPatient, float)
    n = np.cross(o[:3], o[3:])
    ds.sort(key=lambda d: float(np.dot(n, np.array(d.ImagePositionPatient, float))))
    vol = np.empty((len(ds), ds[0].Rows, ds[0].Columns), np.int16)
    for i, d in enumerate(ds):
        hu = d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept)
        vol[i] = np.clip(np.rint(hu), -32768, 32767)
    return vol

def load_sitk(folder):
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    reader.SetOutputPixelType(sitk.sitkInt16)
    return sitk.GetArrayFromImage(reader.Execute())

reader, folder, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = {"pydicom": load_pydicom, "simpleitk": load_sitk}[reader]
for _ in range(runs):
    start = time.perf_counter()
    vol = load(folder)
    seconds = time.perf_counter() - start
    print(json.dumps({"reader": reader, "seconds": round(seconds, 4), "dims": list(vol.shape)}))
