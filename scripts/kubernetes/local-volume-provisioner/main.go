// A dynamic provisioner for the test cluster: a PersistentVolumeClaim of a StorageClass whose provisioner is
// ruriko.dev/local-dir gets a directory on the node and a `local` PersistentVolume bound to it; when the claim is
// deleted (reclaim policy Delete) the directory and the volume go too. It runs on the host next to the kubelet,
// as local-path provisioners do, and is for tests only: one node, no quotas (capacity is what the claim asked).
//
// Directories are created root-owned 0755, like the root of a fresh block volume: a non-root pod writes to its
// volume only with a pod `fsGroup` (the kubelet applies it to `local` volumes), exactly as on a real cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	provisionedBy = "pv.kubernetes.io/provisioned-by"
	selectedNode  = "volume.kubernetes.io/selected-node"
	hostnameLabel = "kubernetes.io/hostname"
)

type options struct {
	kubeconfig  string
	baseDir     string
	provisioner string
	defaultNode string
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of a user that may manage PersistentVolumes")
	flag.StringVar(&o.baseDir, "base-dir", "", "folder on this host holding one directory per volume")
	flag.StringVar(&o.provisioner, "provisioner", "ruriko.dev/local-dir", "provisioner name StorageClasses refer to")
	flag.StringVar(&o.defaultNode, "node", "localhost", "node of volumes whose claim names none (binding mode Immediate)")
	flag.Parse()
	if o.kubeconfig == "" || o.baseDir == "" {
		log.Fatal("--kubeconfig and --base-dir are required")
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	base, err := filepath.Abs(o.baseDir)
	if err != nil {
		return err
	}
	o.baseDir = base
	if err := os.MkdirAll(o.baseDir, 0o755); err != nil {
		return fmt.Errorf("base dir: %w", err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// client-go's default (5 requests/s) would make a thousand claims wait minutes on this one local API server.
	config.QPS, config.Burst = 100, 200
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	factory := informers.NewSharedInformerFactory(client, 5*time.Minute)
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(prefix string) cache.ResourceEventHandlerFuncs {
		add := func(obj any) {
			if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
				queue.Add(prefix + key)
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, obj any) { add(obj) }}
	}
	if _, err := claims.Informer().AddEventHandler(enqueue("claim/")); err != nil {
		return err
	}
	if _, err := volumes.Informer().AddEventHandler(enqueue("volume/")); err != nil {
		return err
	}
	classes.Informer() // registered before Start, read through its lister
	factory.Start(ctx.Done())
	for informer, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("cache of %v did not sync", informer)
		}
	}
	p := &provisioner{o: o, client: client, claims: claims.Lister(), volumes: volumes.Lister(), classes: classes.Lister()}
	log.Printf("provisioning %s volumes under %s", o.provisioner, o.baseDir)

	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return nil
		}
		if err := p.handle(ctx, key); err != nil {
			log.Printf("%s: %v (retrying)", key, err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

type provisioner struct {
	o       options
	client  kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

func (p *provisioner) handle(ctx context.Context, key string) error {
	kind, rest, _ := strings.Cut(key, "/")
	if kind == "volume" {
		return p.reclaim(ctx, rest)
	}
	namespace, name, err := cache.SplitMetaNamespaceKey(rest)
	if err != nil {
		return nil
	}
	claim, err := p.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.provision(ctx, claim)
}

func (p *provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	className := classOf(claim)
	if className == "" || claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil {
		return nil
	}
	class, err := p.classes.Get(className)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	node, ok := nodeFor(claim, class, p.o.provisioner, p.o.defaultNode)
	if !ok {
		return nil
	}
	name := volumeName(claim)
	if _, err := p.volumes.Get(name); err == nil {
		return nil // made already; the PV controller binds it
	}
	dir := filepath.Join(p.o.baseDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("volume directory: %w", err)
	}
	volume := volumeFor(claim, class, p.o.provisioner, node, dir)
	if _, err := p.client.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	log.Printf("provisioned %s for %s/%s on node %s", name, claim.Namespace, claim.Name, node)
	return nil
}

func (p *provisioner) reclaim(ctx context.Context, name string) error {
	volume, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !releasedForDeletion(volume, p.o.provisioner) {
		return nil
	}
	dir := volume.Spec.Local.Path
	// Only a directory this provisioner made: never a path a hand-written volume happens to carry.
	if filepath.Dir(dir) != p.o.baseDir || filepath.Base(dir) != name {
		return fmt.Errorf("volume %s: path %s is not this provisioner's; left alone", name, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	err = p.client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &volume.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete volume %s: %w", name, err)
	}
	log.Printf("deleted %s (claim %s/%s released)", name, volume.Spec.ClaimRef.Namespace, volume.Spec.ClaimRef.Name)
	return nil
}

// classOf is the claim's StorageClass name (the DefaultStorageClass admission plugin fills it in when omitted).
func classOf(claim *corev1.PersistentVolumeClaim) string {
	if claim.Spec.StorageClassName != nil {
		return *claim.Spec.StorageClassName
	}
	return ""
}

// nodeFor is the node a claim's volume goes on, and whether it is time to make it: the scheduler's choice under
// WaitForFirstConsumer (none yet: wait), else the default node.
func nodeFor(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, provisioner, defaultNode string) (string, bool) {
	if class.Provisioner != provisioner || claim.Status.Phase != corev1.ClaimPending {
		return "", false
	}
	if class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
		node := claim.Annotations[selectedNode]
		return node, node != ""
	}
	return defaultNode, true
}

// volumeName follows the provisioners' convention: one volume per claim, named after the claim's uid.
func volumeName(claim *corev1.PersistentVolumeClaim) string {
	return "pvc-" + string(claim.UID)
}

// volumeFor is the PersistentVolume for a claim: a `local` volume at dir on node, pre-bound to the claim.
func volumeFor(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, provisioner, node, dir string) *corev1.PersistentVolume {
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: volumeName(claim), Annotations: map[string]string{provisionedBy: provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// releasedForDeletion: a volume of this provisioner whose claim is gone and whose policy says delete it.
func releasedForDeletion(volume *corev1.PersistentVolume, provisioner string) bool {
	return volume.Annotations[provisionedBy] == provisioner &&
		volume.Status.Phase == corev1.VolumeReleased &&
		volume.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete &&
		volume.Spec.Local != nil && volume.Spec.ClaimRef != nil
}
