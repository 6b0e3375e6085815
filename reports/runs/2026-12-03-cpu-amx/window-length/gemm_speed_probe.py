import numpy as np, time, sys
a=np.random.rand(1024,256).astype(np.float32); b=np.random.rand(256,768).astype(np.float32)
t_end=time.time()+float(sys.argv[1]); out=[]
while time.time()<t_end:
    t0=time.perf_counter(); n=0
    while time.perf_counter()-t0<1.0:
        a@b; n+=1
    dt=time.perf_counter()-t0
    out.append(dt/n*1e3)
print(" ".join(f"{x:.2f}" for x in out))
