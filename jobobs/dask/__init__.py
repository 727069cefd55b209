"""Jobs on a Dask cluster: the executor on the server, the job's side on a worker. The only
package that imports ``distributed``."""
