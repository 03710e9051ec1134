module lowport.test/testsrv

go 1.19
